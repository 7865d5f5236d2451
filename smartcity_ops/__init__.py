"""The operator app: the ``smartcity`` command, the supervisor of the platform's services, and its status."""
