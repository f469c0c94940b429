"""The one policy engine: IAM identity policies, S3 bucket policies and (later) trust
policies are parsed and evaluated here, by every service alike.

* :mod:`~eucalite.policy.grammar`: what each kind of document may say and the error each
  service answers (IAM's ``MalformedPolicyDocument``, S3's ``MalformedPolicy``);
* :mod:`~eucalite.policy.document`: the parser, into :class:`~.document.Policy`;
* :mod:`~eucalite.policy.conditions`: condition operators, wildcards, policy variables;
* :mod:`~eucalite.policy.evaluation`: a request (caller, action, resource ARN, condition
  keys) against identity and resource policies, with the statement that decided;
* :mod:`~eucalite.policy.arns`: this cloud's ARNs.

Neutral: no role, no database, no Flask; services translate their requests into it.
"""
