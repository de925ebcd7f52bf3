/** Times as the portal shows them: minutes, in UTC, the same on every page. */
export function formatTime(value: Date | string): string {
  return new Date(value).toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** A byte count for people: "812 bytes", "14 KB", "2.3 MB". */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} byte${bytes === 1 ? '' : 's'}`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}
