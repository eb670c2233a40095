import json

from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import Note


@csrf_exempt
def notes(request):
    """GET: every note's text, oldest first; POST {"text": ...}: adds one."""
    if request.method == "POST":
        note = Note.objects.create(text=json.loads(request.body)["text"])
        return JsonResponse({"id": note.id}, status=201)
    return JsonResponse([note.text for note in Note.objects.order_by("id")], safe=False)
