// Starts the Temporal dev server for the suite (filled in by the local-stack work).
export default function setup(): void {}
