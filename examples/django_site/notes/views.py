from django.shortcuts import get_object_or_404, redirect, render

from .forms import NoteForm
from .models import Note


def note_list(request):
    return render(request, "notes/list.html", {"notes": Note.objects.all()})


def note_detail(request, pk):
    return render(request, "notes/detail.html", {"note": get_object_or_404(Note, pk=pk)})


def note_create(request):
    form = NoteForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        note = form.save()
        return redirect(note)
    return render(request, "notes/form.html", {"form": form})
