"""Every hand-written SQL statement: the paths that run per email or per thousand rows.

Elsewhere peewee's query builder writes the SQL. Here it is written once, for the statements
where building it cost more than running it: the claim and the record of every email, the job
rows of a request, an update's fan-out and the digest scan. Table and column names come from the
models' metadata, values pass through each field's own ``db_value``/``python_value``, and rows
come back as named tuples; ``tests/shared/test_sql.py`` checks that each writes exactly the row
the model would.

On PostgreSQL the per-email statements are prepared (:class:`Prepared`), parsed and planned once
per connection for any number of jobs (the ids travel as one array); on SQLite, whose driver
keeps compiled statements itself, their text is cached per number of jobs.
"""
