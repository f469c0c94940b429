"""Cloud-bursting: overflow into another EC2-compatible cloud (issue 19).

The cloud admin configures burst targets (:mod:`.targets`, stored in :mod:`.models`, their
credentials sealed by :mod:`.sealed`); each is its own availability zone, ``burst-<name>``.
RunInstances places instances there when a target's policy says so (:mod:`.placement`);
their rows are ordinary instances with ``burst_target`` and ``remote_id`` set and no node.
:mod:`.jobs` acts on the remote instance (:mod:`.remote`, EC2 over botocore) from the
compute worker; :mod:`.reconcile` keeps local rows and remote instances in step, both
following a remote instance's state by the one rule of :mod:`.mirror`.
:class:`.service.BurstService` is the surface the cloud controller, the CLI and the
console call.

Layering: this package sits above the cloud controller (it reads and writes instance rows
through :mod:`eucalite.compute.states`); the cloud controller reaches it only through the
object :class:`~eucalite.services.Services` gives it (``ComputeService.burst``).
"""
