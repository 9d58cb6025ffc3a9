"""The pre-flight check the upgrade guide asks for before an upgrade."""
