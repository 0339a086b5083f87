"""Running Vigie as a service: the systemd unit, the admin listener's metrics, online backups."""
