"""WTForms validators of the admin forms; the messages are the REST API's where it has one."""

from __future__ import annotations

from sqlalchemy import Column, func, select
from wtforms import Field, Form, ValidationError

from readapi.admin.request_context import CURRENT
from readapi.body import JsonError, decode_json
from readapi.validation import not_a_list
from schema.topics import connector_name_problem


class MqttName:
    """A connector's or controller's name: its MQTT topics start with it."""

    def __call__(self, form: Form, field: Field) -> None:
        problem = connector_name_problem(field.data or "")
        if problem:
            raise ValidationError(problem)


class Unique:
    """No other row has this value (the row being edited may keep its own)."""

    def __init__(self, column: Column, message: str) -> None:
        self.column = column
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        request = CURRENT.get()
        # Only a value that passed the field's other checks is looked up (NUL, for one, is
        # something PostgreSQL cannot even compare).
        if request is None or field.data in (None, "") or field.errors:
            return
        table = self.column.table
        statement = select(func.count()).select_from(table).where(self.column == field.data)
        own_id = request.path_id()
        if own_id is not None:
            statement = statement.where(table.c.id != own_id)
        # Blocking, on the event loop: one indexed lookup, on a page operators use rarely.
        with request.engine.connect() as connection:
            if connection.execute(statement).scalar_one():
                raise ValidationError(self.message)


class JsonList:
    """Text that is empty or a JSON list, as allowed_values is stored."""

    def __call__(self, form: Form, field: Field) -> None:
        text = (field.data or "").strip()
        if not text:
            return
        try:
            # The REST body's limits (depth, no lone surrogates): every read decodes it again.
            value = decode_json(text.encode("utf-8", "surrogatepass"))
        except JsonError as error:
            raise ValidationError(
                f'Enter a JSON list, such as ["on", "off"] or [0, 1, 2] ({error}).'
            ) from None
        if not isinstance(value, list):
            raise ValidationError(not_a_list(value))


class NotAbove:
    """This number is not greater than another field's."""

    def __init__(self, other: str, message: str) -> None:
        self.other = other
        self.message = message

    def __call__(self, form: Form, field: Field) -> None:
        other = form[self.other].data
        if field.data is not None and other is not None and field.data > other:
            raise ValidationError(self.message)


class NoNul:
    """PostgreSQL cannot store NUL in text; DRF refuses it with this message."""

    def __call__(self, form: Form, field: Field) -> None:
        if isinstance(field.data, str) and "\x00" in field.data and not field.errors:
            raise ValidationError("Null characters are not allowed.")
