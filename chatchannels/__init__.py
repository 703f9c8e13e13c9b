"""Chat Channels: an event-sourced archive of Skype chats."""
