"""What lets several daemons share one PostgreSQL store: the event bus between nodes
(:mod:`.bus`), the node directory, forwarding between nodes and the chat relay."""
