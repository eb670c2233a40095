from notes.models import Note


def test_a_note_written_through_the_orm_is_served(api):
    Note.objects.create(text="buy tea")
    assert api.get(api.base).json() == ["buy tea"]


def test_a_note_posted_over_http_is_in_the_database(api):
    response = api.post(api.base, json={"text": "call the plumber"})
    assert response.status_code == 201
    assert Note.objects.get(id=response.json()["id"]).text == "call the plumber"


def test_each_test_starts_with_empty_tables(api):
    assert Note.objects.count() == 0
    assert api.get(api.base).json() == []
