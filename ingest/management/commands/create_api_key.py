"""create_api_key PROJECT: add an API key to a project and print it on the last line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from ingest.models import ApiKey, Project


class Command(BaseCommand):
    help = "Add an API key to a project (by slug or name) and print it on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("project", help="Project slug or name.")
        parser.add_argument("--name", default="default", help="A label for the key.")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.Scope.values,
            help="What the key may do (repeat for several); default: ingest, an agent's key that "
            "can only send. read: the API with prompts and contents; actions: requeue, resolve, "
            "anomaly status; poll: take requeued messages; erase: delete sessions and request "
            "erasures.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        project = Project.objects.filter(
            Q(slug=options["project"]) | Q(name=options["project"])
        ).first()
        if project is None:
            raise CommandError(f"No project with slug or name {options['project']!r}")
        scopes = options["scope"] or [ApiKey.Scope.INGEST]
        key, raw = ApiKey.generate(
            project, name=options["name"], scopes=scopes, created_by="create_api_key"
        )
        self.stdout.write(
            f"New API key {key.prefix}… for project {project.slug}, scopes: {key.scopes}:"
        )
        self.stdout.write(raw)
