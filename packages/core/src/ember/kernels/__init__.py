"""Fast device paths that ops call; nothing above ``ember.ops`` imports these."""
