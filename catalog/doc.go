// Package catalog is tierd's durable record of which segment is on which tier.
//
// It keeps, in one bbolt database (state_dir/catalog.db) owned by one tierd process and one
// node:
//   - a Record per object on a tier (what local file it came from, its size and CRC-32C on
//     the tier and locally, when it was offloaded and last verified), with an index from a
//     local segment to every tier holding it (Holders); stored in a compact binary form
//     (value.go; about a quarter of the JSON markers use, and JSON values of catalogs
//     written before it are still read);
//   - the intent journal: an Intent is written before a job touches a tier and cleared when
//     the job is recorded (Commit) or undone (Finish), so intents found at start are exactly
//     the jobs a crash interrupted (docs/DESIGN.md invariant 4);
//   - the abort marker state_dir/abort, present while a run is in progress, so the next
//     start knows the previous one did not exit cleanly and reconciles (invariant 5);
//   - the local state the scans keep (local.go: closed files per sequence directory, with
//     the size and mtime seen and whether they are sealed) and the indexes planning reads
//     (index.go: copies due per tier, records per tier by age, sealed local files by age,
//     per-tier counters), each written in the transaction that changes what it follows,
//     so that nothing the daemon keeps in memory grows with the number of files or
//     records (invariant 9). Listings (WalkRecords, WalkLocal, Dump) read a page at a
//     time.
//
// Every write is durable when it returns (bbolt fsyncs each commit). Next to each object
// the pipeline stores a small marker object (WriteMarker, MarkerKey) holding the object's
// whole Record, written last, so the catalog of a tier can be rebuilt from the tier alone
// (Rebuild, invariant 6).
//
// The offload pipeline uses it in this order: Begin (intent) -> stream to the tier ->
// Commit the object -> verify with Stat -> WriteMarker -> Catalog.Commit (record and clear
// the intent in one transaction).
package catalog
