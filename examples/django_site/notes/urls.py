from django.urls import path

from . import views

urlpatterns = [
    path("", views.note_list, name="note-list"),
    path("notes/new/", views.note_create, name="note-create"),
    path("notes/<int:pk>/", views.note_detail, name="note-detail"),
]
