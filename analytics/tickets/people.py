"""Responsible persons (责任人) and verifiers (验收人), declared in config and referenced by id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, Field

from analytics.tickets.errors import UnknownPerson


class PersonConfig(BaseModel):
    """One person who can be responsible for or verify a remediation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    name: str = Field(min_length=1)
    role: str = ""  # their job, e.g. 总务主任 / facilities director
    phone: str = ""


class PeopleDirectory:
    """Read-only lookup of configured people by id."""

    def __init__(self, people: Iterable[PersonConfig]) -> None:
        self._by_id: dict[str, PersonConfig] = {}
        for person in people:
            if person.id in self._by_id:
                raise ValueError(f"person id {person.id!r} appears twice")
            self._by_id[person.id] = person

    def get(self, person_id: str | None) -> PersonConfig | None:
        return None if person_id is None else self._by_id.get(person_id)

    def require(self, person_id: str) -> PersonConfig:
        person = self._by_id.get(person_id)
        if person is None:
            raise UnknownPerson(person_id, self._by_id)
        return person

    def __iter__(self) -> Iterator[PersonConfig]:
        return iter(self._by_id.values())
