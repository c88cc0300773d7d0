"""create_project NAME: make a project (or reuse one by that name) and print a new API key last."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.text import slugify

from ingest.models import ApiKey, Membership, Project


class Command(BaseCommand):
    help = "Create a project (reused if it exists) and print a new API key on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--owner", help="Username made an admin member of the project.")
        parser.add_argument("--key-name", default="default")
        parser.add_argument(
            "--scope",
            action="append",
            choices=ApiKey.Scope.values,
            help="Scopes of the printed key (repeat for several); default: all of them, the "
            "project owner's key. Give agents a key of their own: create_api_key --scope ingest.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["name"].strip()
        slug = slugify(name)
        if not slug:
            raise CommandError("NAME must contain at least one letter or digit")
        project, created = Project.objects.get_or_create(slug=slug, defaults={"name": name})
        if options["owner"]:
            user = get_user_model().objects.filter(username=options["owner"]).first()
            if user is None:
                raise CommandError(f"No user named {options['owner']!r} (--owner)")
            Membership.objects.update_or_create(
                user=user, project=project, defaults={"role": Membership.Role.ADMIN}
            )
        key, raw = ApiKey.generate(
            project,
            name=options["key_name"],
            scopes=options["scope"] or ApiKey.ALL_SCOPES.split(),
            created_by="create_project",
        )
        verb = "Created" if created else "Reusing"
        self.stdout.write(
            f"{verb} project {project.name!r} (slug {project.slug}). "
            f"New API key, scopes: {key.scopes}:"
        )
        self.stdout.write(raw)
