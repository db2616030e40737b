// Package source knows the broker directories tierd offloads from: which files are
// segments, which sequence each belongs to, and when the broker is done with one.
//
// A Layout (rocketmq, kafka) scans a source directory and returns its candidates grouped
// by sequence, plus what it skipped and why. What it promises: it only lists directories
// and lstats files below the directories it owns, reads no segment body (the one read is
// the 40-byte header of the newest RocketMQ IndexFile), never writes, renames or deletes,
// and never follows a link below the owned directories. A Sealer turns successive scans
// into sealed segments: a file is sealed only when its layout calls it closed, it is
// unchanged across two scans, and it is older than the grace period; until then it is
// reported as pending with the reason.
//
// The segment package holds what a scan yields (segment.Segment, Kind, keys); this
// package holds how broker files are found. The golden scans of each layout are in
// testdata/<layout>/<case>/.
package source
