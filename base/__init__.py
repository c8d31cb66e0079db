"""The base layer under every other package: settings, logs, metrics, the clock, Kafka clients and admin.

Why a layer of its own: the jobs, the gateway, the simulator and the benches all need one settings
object and one way to build Kafka clients, and none of them may import the CLI that sits on top.
Nothing in ``base`` imports any other livecommerce package (``make lint`` checks the contract).
"""
