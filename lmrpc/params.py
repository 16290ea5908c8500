"""Building blocks of the params models: strict types with the limits of API.md §1 and the
text rules of §4 (every string refuses control characters; product and feature names are
Slurm license name parts)."""

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    create_model,
    field_validator,
    model_validator,
)

from lmrpc.text import has_control
from storage.list_fields import LIST_FIELDS, ListQuery

MAX_INT = 2**31 - 1

Id = Annotated[int, Field(ge=1, le=MAX_INT)]
Count = Annotated[int, Field(ge=0, le=MAX_INT)]
Positive = Annotated[int, Field(ge=1, le=MAX_INT)]
Name = Annotated[str, Field(min_length=1, max_length=255)]
# Products and features name Slurm licenses ``product.feature@type``: ``.``, ``@``, ``,``
# and ``:`` are separators there, so the parts keep to letters, digits, ``_``, ``-``, ``+``.
LicenseName = Annotated[str, Field(pattern=r"^[A-Za-z0-9_+-]{1,255}$")]
Port = Annotated[int, Field(ge=1, le=65535)]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def _host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        if _HOSTNAME.match(value):
            return value
    raise ValueError("must be a hostname or an IP address")


def _job_id_text(value: Any) -> Any:
    """Slurm job ids are text (array jobs: ``1234_5``); accept a plain number too."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_INT:
        return str(value)
    return value


Host = Annotated[Name, AfterValidator(_host)]
SlurmJobId = Annotated[Name, BeforeValidator(_job_id_text)]


CONTROL_REFUSED = "must not contain control characters (Unicode Cc, Cf, Cs)"


def _refuse_control(value: str) -> str:
    if has_control(value):
        raise ValueError(CONTROL_REFUSED)
    return value


# Name with the rule of Params below, for the entries of long lists typed as TypedDicts
# (no model instance and no validator call per field: features.bulk_update's 10,000).
CheckedName = Annotated[Name, AfterValidator(_refuse_control)]


class Params(BaseModel):
    """Params are by name, strictly typed, and unknown names are refused; no string param,
    however it is typed, may hold a control character (lmrpc.text)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        # Runs for every field of every call: the common cases return after one test.
        if isinstance(value, str):
            return _refuse_control(value)
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    _refuse_control(item)
        return value


class NoParams(Params):
    pass


class IdParams(Params):
    id: Id


class NoNulls(Params):
    """Optional fields may be left out but not given as null (null would mean "clear")."""

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = [
                key for key, value in data.items() if value is None and key in cls.model_fields
            ]
            if nulls:
                raise ValueError(f"must not be null: {', '.join(sorted(nulls))}")
        return data


class UpdateParams(NoNulls):
    """``id`` plus the fields to change: at least one, and none of them null."""

    id: Id

    @model_validator(mode="after")
    def _something_to_change(self) -> "UpdateParams":
        if not self.model_fields_set - {"id"}:
            raise ValueError("nothing to change: give at least one field besides id")
        return self

    def changes(self) -> dict[str, Any]:
        """The fields the caller gave, besides ``id``."""
        return {name: getattr(self, name) for name in self.model_fields_set - {"id"}}


class ListParams(Params):
    """Search, sort and paging; ``list_params`` narrows them to one resource's fields."""

    search: Annotated[str, Field(max_length=255)] | None = None
    sort_field: str | None = None
    sort_ascending: bool = True
    limit: Annotated[int, Field(ge=1, le=10_000)] | None = None
    offset: Count = 0


def list_params(resource: str, model_name: str) -> type[ListParams]:
    """The list params of ``resource`` (storage.list_fields.LIST_FIELDS): ``sort_field`` is one
    of its sortable fields, so the JSON Schema lists the choices and anything else is
    -32602; ``search`` is refused where nothing is searchable."""
    fields = LIST_FIELDS[resource]
    choices: Any = Literal.__getitem__(fields.sortable)
    narrowed: dict[str, Any] = {"sort_field": (choices | None, None)}
    if not fields.searchable:
        narrowed["search"] = (None, None)
    return create_model(model_name, __base__=ListParams, **narrowed)


def list_query(params: ListParams) -> ListQuery:
    """The storage-level list query for validated list params."""
    return ListQuery(
        search=params.search,
        sort_field=params.sort_field,
        sort_ascending=params.sort_ascending,
        limit=params.limit,
        offset=params.offset,
    )
