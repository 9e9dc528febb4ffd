"""Backup and restore of datapoint metadata and messages over the REST API.

Compatible with the original service's `simple_db_backup.py`: the same options and the same
files, so backups made by either tool restore with either.
"""
