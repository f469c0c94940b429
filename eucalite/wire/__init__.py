"""The wire layer of AWS's model-driven services (CloudWatch first): one handler per
operation, served on every protocol the service's botocore model lists.

A service built on it holds a :class:`~eucalite.wire.serve.Operations` registry made from
its :class:`~eucalite.wire.model.ServiceModel`, registers a handler per operation and mounts
the registry on a Flask blueprint (:func:`~eucalite.wire.serve.mount`). Requests are read in
the protocol the client picked (:mod:`~eucalite.wire.parse`: awsQuery forms, awsJson 1.0,
Smithy RPC v2 CBOR), checked against the model's constraints (:mod:`~eucalite.wire.validate`),
and answered in the same
protocol (:mod:`~eucalite.wire.render`); :mod:`~eucalite.wire.cbor` is the CBOR codec.
"""
