package codec

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/tierd/tierd/segment"
)

// Config is a codec tier's settings.
type Config struct {
	// Compression of new objects' frames.
	Compression Compression
	// Keys encrypts new objects and decrypts any; nil writes unencrypted objects (and
	// cannot read encrypted ones).
	Keys *KeyRing
}

// Backend is a segment.Backend that compresses and encrypts the objects of the Backend it
// wraps, frame by frame, so ranged reads stay ranged (FORMAT.md). Stat, List and readers
// see the plaintext: its size, and the CRC-32C of its bytes. It is safe for concurrent use.
type Backend struct {
	inner  segment.Backend
	cfg    Config
	codecs *Codecs
	log    *zap.Logger
}

var _ segment.Backend = (*Backend)(nil)

// New wraps inner.
func New(inner segment.Backend, cfg Config, codecs *Codecs, log *zap.Logger) *Backend {
	return &Backend{inner: inner, cfg: cfg, codecs: codecs, log: log}
}

// Inner returns the wrapped backend.
func (b *Backend) Inner() segment.Backend { return b.inner }

// sidecarSuffix names an object's key sidecar: key + sidecarSuffix.
const sidecarSuffix = ".tierd-key"

func isSidecar(k segment.Key) bool { return strings.HasSuffix(string(k), sidecarSuffix) }

func sidecarKey(k segment.Key) segment.Key { return k + sidecarSuffix }

// Stat implements segment.Backend: the plaintext's size and CRC-32C, from the footer.
func (b *Backend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
	if isSidecar(key) {
		return segment.Info{}, fmt.Errorf("stat %s: %w", key, segment.ErrNotFound)
	}
	info, err := b.inner.Stat(ctx, key)
	if err != nil {
		return info, err
	}
	size, crc, ok, err := b.footer(ctx, key)
	if err != nil || !ok {
		return info, err
	}
	info.Size, info.CRC32C = size, crc
	return info, nil
}

// footer reads the plaintext size and CRC-32C of the object under key; ok is false for an
// object not in this format.
func (b *Backend) footer(ctx context.Context, key segment.Key) (size int64, crc uint32, ok bool, err error) {
	r, err := b.inner.Open(ctx, key)
	if err != nil {
		return 0, 0, false, err
	}
	defer r.Close()
	if r.Size() < HeaderSize+FooterSize {
		return 0, 0, false, nil
	}
	tail := make([]byte, FooterSize)
	if err := readFull(r, tail, r.Size()-FooterSize); err != nil {
		return 0, 0, false, fmt.Errorf("stat %s: read footer: %w", key, err)
	}
	if !hasFooterMagic(tail) {
		return 0, 0, false, nil
	}
	f, err := parseFooter(tail)
	if err != nil {
		return 0, 0, false, fmt.Errorf("stat %s: %w", key, err)
	}
	return f.Size, f.CRC32C, true, nil
}

// listParallelism is how many footers List reads at once.
const listParallelism = 8

// List implements segment.Backend. Sizes are the plaintext's: List reads every listed
// object's footer (listParallelism at a time). Key sidecars are not listed.
func (b *Backend) List(ctx context.Context, prefix segment.Key) ([]segment.Entry, error) {
	es, err := b.inner.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := es[:0]
	for _, e := range es {
		if !isSidecar(e.Key) {
			out = append(out, e)
		}
	}
	gone := make([]bool, len(out))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listParallelism)
	for i := range out {
		g.Go(func() error {
			size, _, ok, err := b.footer(gctx, out[i].Key)
			switch {
			case errors.Is(err, segment.ErrNotFound):
				gone[i] = true // deleted since the listing
			case err != nil:
				return fmt.Errorf("list %q: %w", prefix, err)
			case ok:
				out[i].Size = size
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	kept := make([]segment.Entry, 0, len(out))
	for i, e := range out {
		if !gone[i] {
			kept = append(kept, e)
		}
	}
	return kept, nil
}

// Delete implements segment.Backend: the object, then its key sidecar if any.
func (b *Backend) Delete(ctx context.Context, key segment.Key) error {
	if err := b.inner.Delete(ctx, key); err != nil {
		return err
	}
	if err := key.Valid(); err != nil {
		return nil
	}
	return b.inner.Delete(ctx, sidecarKey(key))
}

// readSidecar reads the key sidecar of key.
func (b *Backend) readSidecar(ctx context.Context, key segment.Key) (sidecar, error) {
	r, err := b.inner.Open(ctx, sidecarKey(key))
	if err != nil {
		return sidecar{}, err
	}
	defer r.Close()
	if r.Size() != SidecarSize {
		return sidecar{}, formatErr("key sidecar %s is %d bytes, want %d", sidecarKey(key), r.Size(), SidecarSize)
	}
	buf := make([]byte, SidecarSize)
	if err := readFull(r, buf, 0); err != nil {
		return sidecar{}, fmt.Errorf("read key sidecar %s: %w", sidecarKey(key), err)
	}
	return parseSidecar(buf)
}

// RekeyStats counts what Rekey did.
type RekeyStats struct {
	Objects  int `json:"objects"`    // objects looked at
	Rekeyed  int `json:"rekeyed"`    // data keys wrapped anew with the newest key
	UpToDate int `json:"up_to_date"` // already wrapped with the newest key
	Plain    int `json:"plain"`      // not encrypted: nothing to do
}

// Rekey wraps the data key of every encrypted object under prefix with the key file's
// newest key, in a key sidecar (key + ".tierd-key", a small object of its own), without
// rewriting the object: once it is done, every older key can be removed from the key file.
// progress, if not nil, is called after each object.
func (b *Backend) Rekey(ctx context.Context, prefix segment.Key, progress func(key segment.Key, rekeyed bool)) (RekeyStats, error) {
	var st RekeyStats
	keys := b.cfg.Keys
	if keys == nil {
		return st, fmt.Errorf("rekey: the tier has no encryption.key_file")
	}
	newest := keys.Newest()
	es, err := b.inner.List(ctx, prefix)
	if err != nil {
		return st, fmt.Errorf("rekey: %w", err)
	}
	for _, e := range es {
		if isSidecar(e.Key) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return st, err
		}
		st.Objects++
		did, plain, err := b.rekeyOne(ctx, e.Key, newest)
		switch {
		case errors.Is(err, segment.ErrNotFound):
			st.Objects-- // deleted since the listing
			continue
		case err != nil:
			return st, fmt.Errorf("rekey %s: %w", e.Key, err)
		case plain:
			st.Plain++
		case did:
			st.Rekeyed++
		default:
			st.UpToDate++
		}
		if progress != nil {
			progress(e.Key, did)
		}
	}
	return st, nil
}

func (b *Backend) rekeyOne(ctx context.Context, key segment.Key, newest string) (did, plain bool, err error) {
	r, err := b.inner.Open(ctx, key)
	if err != nil {
		return false, false, err
	}
	o, err := readObject(r, key)
	r.Close()
	if err != nil {
		return false, false, err
	}
	if o.legacy || o.h.Encryption != encAESGCM {
		return false, true, nil
	}
	if o.h.KeyID == newest {
		return false, false, nil
	}
	if s, err := b.readSidecar(ctx, key); err == nil && s.ObjectID == o.h.ObjectID && s.KeyID == newest {
		return false, false, nil
	}
	dk, err := b.dataKey(ctx, key, &o)
	if err != nil {
		return false, false, err
	}
	s := sidecar{ObjectID: o.h.ObjectID, KeyID: newest}
	s.WrapNonce, s.WrappedKey, err = b.cfg.Keys.wrap(newest, dk, wrapAAD(o.hdr, newest, key))
	clear(dk)
	if err != nil {
		return false, false, err
	}
	data := s.marshal()
	w, err := b.inner.Create(ctx, sidecarKey(key), int64(len(data)))
	if err != nil {
		return false, false, err
	}
	if _, err = w.Write(data); err == nil {
		err = w.Commit(ctx)
	}
	if err != nil {
		if aerr := w.Abort(); aerr != nil {
			b.log.Warn("abort key sidecar write", zap.Stringer("key", key), zap.Error(aerr))
		}
		return false, false, fmt.Errorf("write key sidecar: %w", err)
	}
	return true, false, nil
}
