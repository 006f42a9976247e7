"""Celery tasks: thin. Each takes ids, and calls the domain (`registry/jobs.py`), where the Job
row records state, progress and the reason of a failure."""

from celery import shared_task

from . import jobs


@shared_task(name="registry.run_job", acks_late=True, ignore_result=True)
def run_job(job_id):
    jobs.job_run(job_id)


@shared_task(name="registry.sweep_stale_jobs", ignore_result=True)
def sweep_stale_jobs():
    return jobs.sweep_stale()
