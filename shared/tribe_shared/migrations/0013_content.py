"""Content (issue #18): a recipient's locale, a group's opt-in to AI digest summaries.

``ai_summary`` gets a default in the database itself (``DEFAULT false``), not only in the model:
rows written by anything but this code (the main app, a bench's SQL) leave it out. Adding a
column with a constant default rewrites no table on PostgreSQL.
"""

from playhouse.migrate import CharField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("recipients", "locale", CharField(max_length=35, null=True)),
    )
    db.execute_sql('ALTER TABLE "groups" ADD COLUMN "ai_summary" BOOLEAN NOT NULL DEFAULT false')


def down(migrator, db):
    migrator.migrate(
        migrator.drop_column("groups", "ai_summary"),
        migrator.drop_column("recipients", "locale"),
    )
