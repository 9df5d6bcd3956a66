"""Airflow's local settings for cjmonitor: Airflow imports this module (found on the path: scripts/airflow-local.sh
puts config/airflow on PYTHONPATH; elsewhere copy it to $AIRFLOW_HOME/config/) in each of its processes.

It does one thing: in the scheduler and in a Celery worker, the processes that fork one process per task, the
application is imported once just before the first fork, so that task processes start with it already loaded
instead of importing pandas, statsmodels and the report stack each time (cjmonitor/preload.py). Set
CJMONITOR_PRELOAD=0 to turn it off.
"""

from cjmonitor.preload import preload_for

preload_for()
