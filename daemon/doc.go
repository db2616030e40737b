// Package daemon is tierd's offload loop: scan the broker's directories, decide what is
// sealed and due on which tier, and move it there through a bounded set of workers, with
// every step journaled so that a crash at any moment loses nothing and leaves nothing
// half-visible (docs/DESIGN.md, "Offload pipeline" and "Invariants").
//
// One offload job: journal the intent -> open the local file (without polluting the page
// cache) -> stream it through the tier's Writer -> Commit -> verify size and CRC-32C by
// Stat -> write the segment's marker object -> record it in the catalog and clear the
// intent in one fsynced transaction. Failed jobs are retried with exponential backoff and
// jitter. The daemon also serves /healthz, /readyz, /status and /metrics.
package daemon
