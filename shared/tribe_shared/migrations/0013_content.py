"""Content (issue #18): a recipient's locale, a group's opt-in to AI digest summaries.

Both columns are added with a constant default (or none), which PostgreSQL does without
rewriting the table.
"""

from playhouse.migrate import BooleanField, CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("recipients", "locale", CharField(max_length=35, null=True)),
        migrator.add_column("groups", "ai_summary", BooleanField(default=False)),
    )


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("groups", "ai_summary"),
        migrator.drop_column("recipients", "locale"),
    )
