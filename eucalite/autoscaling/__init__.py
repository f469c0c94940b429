"""Auto Scaling (Eucalyptus' ``/services/AutoScaling``, AWS's Query API of 2011-01-01):
launch configurations, groups that keep a desired number of instances launched from a
launch configuration or an EC2 launch template, scaling policies run by CloudWatch alarms,
scheduled actions, and the scaling activities that record what each group did and why.

- :mod:`.service`: :class:`~.service.AutoScalingService`, the whole surface;
- :mod:`.api`: the Query endpoint (``aws autoscaling ...``), from botocore's model;
- :mod:`.keeper`: the pass that makes each group's instances match its desired capacity;
- :mod:`.loop`: the background thread that runs it and the scheduled actions.
"""
