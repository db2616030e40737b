package compactor

import (
	"context"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/tierd/tierd/bufpool"
	"github.com/tierd/tierd/index"
	"github.com/tierd/tierd/segment"
)

// Trimmable reports whether Trim handles files of kind: Kafka offset and time indexes.
func Trimmable(kind segment.Kind) bool {
	return kind == segment.KindKafkaOffsetIndex || kind == segment.KindKafkaTimeIndex
}

// Trim ships a Kafka offset (.index) or time (.timeindex) index without the zero-filled
// tail a broker preallocates and an unclean shutdown may leave: it scans src (srcSize
// bytes) with index.ScanOffsetIndex or index.ScanTimeIndex, which validate every used
// entry (monotonic offsets, positions, timestamps), calls create once with the size of
// the used entries, and copies them into the Writer create returned through pool (as
// segment.Copy does). It neither commits nor aborts that Writer. Result.LocalCRC32C
// covers the whole file, tail included. A corrupt index fails with an error wrapping
// index.ErrCorruptIndex before create is called.
func Trim(ctx context.Context, src io.ReaderAt, srcSize int64, kind segment.Kind, pool *bufpool.Pool, create func(size int64) (segment.Writer, error)) (Result, error) {
	var (
		n    int
		unit int64
		err  error
	)
	switch kind {
	case segment.KindKafkaOffsetIndex:
		unit = index.OffsetEntrySize
		n, err = index.ScanOffsetIndex(src, srcSize, nil, func(int, index.OffsetEntry) error { return ctx.Err() })
	case segment.KindKafkaTimeIndex:
		unit = index.TimeEntrySize
		n, err = index.ScanTimeIndex(src, srcSize, nil, func(int, index.TimeEntry) error { return ctx.Err() })
	default:
		return Result{}, fmt.Errorf("trim %s: not a Kafka offset or time index", kind)
	}
	if err != nil {
		return Result{}, fmt.Errorf("trim %s: %w", kind, err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, err
	}
	size := int64(n) * unit
	w, err := create(size)
	if err != nil {
		return Result{}, err
	}
	crc, err := segment.Copy(ctx, w, src, size, pool)
	if err != nil {
		return Result{}, fmt.Errorf("trim %s: %w", kind, err)
	}
	local := crc
	if size < srcSize {
		err = segment.Stream(ctx, src, size, srcSize-size, pool, func(p []byte) error {
			local = crc32.Update(local, segment.Castagnoli, p)
			return nil
		})
		if err != nil {
			return Result{}, fmt.Errorf("trim %s: checksum the dropped tail: %w", kind, err)
		}
	}
	return Result{Size: size, CRC32C: crc, LocalSize: srcSize, LocalCRC32C: local, Entries: n, Passes: 2}, nil
}
