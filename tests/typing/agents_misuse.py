"""Mistakes a type checker must catch in code using the API (tests/unit/test_tasks_keywords.py
expects one error per marked line; never run)."""

from __future__ import annotations

import nhi_invoke

nhi_invoke.invocation(aws_rol_arn="arn")  # error: call-arg
nhi_invoke.invocation(aws_duration="900")  # error: arg-type
nhi_invoke.invocation(serve=True)  # error: call-arg
nhi_invoke.invocation(step_outputs=True)  # error: call-arg
nhi_invoke.invocation(vault_ttl="300")  # error: arg-type
nhi_invoke.invocation(token="eyJhbGciOi")  # error: arg-type
region: int = nhi_invoke.invocation(task_id="a").task_id  # error: assignment
