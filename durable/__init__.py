"""durable: a Workflow-style durable runtime (journaled steps, replay for recovery, sleeps, hooks).

Imports nothing else of wfbench.
"""
