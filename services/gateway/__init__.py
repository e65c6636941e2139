"""The gateway: Socket.IO connections, auth, room rules, fan-out and the message log."""
