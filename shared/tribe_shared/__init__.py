"""The models package shared by the Tribe Jobs API and worker.

Settings, the peewee models and their migrations, and the message contract (statuses, queues,
actor names, how a job is handed to the broker). Neither service imports the other; both import
this.
"""
