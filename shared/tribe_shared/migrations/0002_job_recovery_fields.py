"""Jobs remember how often their worker died under them, and where their dead letter lies."""

from peewee import CharField, IntegerField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("notification_jobs", "lease_losses", IntegerField(default=0)),
        migrator.add_column(
            "notification_jobs", "dead_letter", CharField(max_length=200, null=True)
        ),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("notification_jobs", "lease_losses"),
        migrator.drop_column("notification_jobs", "dead_letter"),
    )
