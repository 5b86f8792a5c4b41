"""A broker that lives in the tests folder only: a small secrets service (`service.py`) and the
broker package that issues its tokens (`declaration.py`, `plan.py`, `broker.py`), registered
the way any plug-in is, with `NHI_BROKER_MODULES=tests.fake_broker.declaration`."""
