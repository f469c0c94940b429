"""ComputeService's launch templates (a mixin): the surface the EC2 adapter, the console
and Auto Scaling call. The rules are :mod:`eucalite.compute.launchtemplates`; a template's
data is a plain dict in LaunchTemplateData's names (see there).

A template is named by exactly one of *template_id* (``lt-…``) and *name*; a version by
None or ``$Default`` (the default), ``$Latest`` or its number as text.
"""
from __future__ import annotations

from typing import Any

from ..accounts import Principal
from . import launchtemplates
from .instances import LaunchRequest
from .launchtemplates import Deleted, VersionFailure
from .models import LaunchTemplate, LaunchTemplateVersion


class LaunchTemplatesMixin:
    """Launch templates and launching from them."""

    def create_launch_template(self, principal: Principal, name: str, data: dict[str, Any],
                               *, description: str | None = None,
                               tag_map: dict[str, str] | None = None,
                               client_token: str | None = None) -> LaunchTemplate:
        """A new template whose version 1 (the default) holds *data*."""
        return launchtemplates.create(principal, name, data, description=description,
                                      tag_map=tag_map, client_token=client_token)

    def create_launch_template_version(
            self, principal: Principal, data: dict[str, Any], *,
            template_id: str | None = None, name: str | None = None,
            source_version: str | None = None, description: str | None = None,
            client_token: str | None = None
    ) -> tuple[LaunchTemplate, LaunchTemplateVersion]:
        """A new latest version; with *source_version*, that version's data under *data*."""
        return launchtemplates.create_version(
            principal, data, template_id=template_id, name=name,
            source_version=source_version, description=description, client_token=client_token)

    def describe_launch_templates(self, principal: Principal, template_ids: list[str] = (),
                                  names: list[str] = ()) -> list[LaunchTemplate]:
        """The caller's templates, oldest first (all of *template_ids*/*names* if given)."""
        return launchtemplates.describe(principal, template_ids, names)

    def describe_launch_template_versions(
            self, principal: Principal, *, template_id: str | None = None,
            name: str | None = None, versions: list[str] = (), minimum: str | None = None,
            maximum: str | None = None) -> list[tuple[LaunchTemplate, LaunchTemplateVersion]]:
        """Versions with their templates (:func:`.launchtemplates.versions`)."""
        return launchtemplates.versions(principal, template_id=template_id, name=name,
                                        specs=versions, minimum=minimum, maximum=maximum)

    def modify_launch_template(self, principal: Principal, default_version: str | None, *,
                               template_id: str | None = None,
                               name: str | None = None) -> LaunchTemplate:
        """Make *default_version* the template's default (None: leave it)."""
        return launchtemplates.set_default(principal, default_version,
                                           template_id=template_id, name=name)

    def delete_launch_template(self, principal: Principal, *, template_id: str | None = None,
                               name: str | None = None) -> Deleted:
        """Delete a template with all its versions and tags."""
        return launchtemplates.delete(principal, template_id=template_id, name=name)

    def delete_launch_template_versions(
            self, principal: Principal, versions: list[str], *,
            template_id: str | None = None, name: str | None = None
    ) -> tuple[LaunchTemplate | None, list[int], list[VersionFailure]]:
        """Delete some versions, each on its own: (template, deleted numbers, failures)."""
        return launchtemplates.delete_versions(principal, versions, template_id=template_id,
                                               name=name)

    def launch_template(self, principal: Principal, *, template_id: str | None = None,
                        name: str | None = None) -> LaunchTemplate:
        """One of the caller's templates (its id, name, default and latest version), or
        InvalidLaunchTemplateId.NotFound / InvalidLaunchTemplateName.NotFoundException."""
        return launchtemplates.find(principal, template_id, name)

    def launch_template_data(self, principal: Principal, *, template_id: str | None = None,
                             name: str | None = None,
                             version: str | None = None) -> dict[str, Any]:
        """A template version's data (LaunchTemplateData as a plain dict, see
        :mod:`eucalite.compute.launchtemplates`)."""
        template = launchtemplates.find(principal, template_id, name)
        return launchtemplates.version(template, version).get_json("data", {})

    def launch_template_request(self, principal: Principal, *,
                                template_id: str | None = None, name: str | None = None,
                                version: str | None = None,
                                overrides: dict[str, Any] | None = None) -> LaunchRequest:
        """The launch a template version describes, as RunInstances would make it, with
        *overrides* (LaunchRequest fields a request gives itself: they win) over it; one
        instance unless *overrides* give counts. The instances get AWS's
        ``aws:ec2launchtemplate:id`` and ``:version`` tags. Errors as AWS's: the template
        or version not found, MissingParameter when no image is named. Whether the image,
        key and groups exist is checked by :meth:`run_instances`."""
        template = launchtemplates.find(principal, template_id, name)
        row = launchtemplates.version(template, version)
        request = launchtemplates.build_launch(
            launchtemplates.launch_settings(row.get_json("data", {})), dict(overrides or {}))
        # AWS tags an instance with the template and version it was launched from.
        request.system_tags = {**launchtemplates.origin_tags(template, row),
                               **(request.system_tags or {})}
        return request
