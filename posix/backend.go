package posix

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/tierd/tierd/localfile"
	"github.com/tierd/tierd/segment"
)

// Mode is a write mode.
type Mode string

const (
	Direct   Mode = "direct"
	Mmap     Mode = "mmap"
	Buffered Mode = "buffered"
)

// DefaultWindow is the default writeback and cache-drop window: large enough that the
// disk sees big sequential writes, small enough that a copy holds little page cache.
const DefaultWindow = 8 << 20

// Config configures a Backend.
type Config struct {
	// Path is the tier's root directory; it is created if missing.
	Path string
	// WriteMode is direct, mmap or buffered (default direct).
	WriteMode Mode
	// Window is the writeback/cache-drop window in bytes (default DefaultWindow).
	Window int64
}

// tmpPrefix starts the names of files being written when O_TMPFILE is not available.
// List hides them, keys may not use it, and CleanTemp removes stale ones.
const tmpPrefix = ".tierd-tmp-"

// Backend is a tier on a local filesystem. See the package comment.
type Backend struct {
	root    string
	mode    Mode
	window  int64
	tmpfile bool // O_TMPFILE + link works here
	log     *zap.Logger
	pending *dirSet // a Deferred view's directories to fsync at Sync; nil otherwise
}

var _ segment.Backend = (*Backend)(nil)

// New opens (creating if needed) the tier at cfg.Path. In direct mode it checks that the
// filesystem accepts O_DIRECT and falls back to buffered, with one warning, if not.
func New(cfg Config, log *zap.Logger) (*Backend, error) {
	if cfg.Path == "" {
		return nil, errors.New("posix: empty path")
	}
	if cfg.WriteMode == "" {
		cfg.WriteMode = Direct
	}
	if cfg.Window <= 0 {
		cfg.Window = DefaultWindow
	}
	cfg.Window = (cfg.Window + pageSize - 1) &^ (pageSize - 1)
	switch cfg.WriteMode {
	case Direct, Mmap, Buffered:
	default:
		return nil, fmt.Errorf("posix: unknown write mode %q", cfg.WriteMode)
	}
	if log == nil {
		log = zap.NewNop()
	}
	root, err := filepath.Abs(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("posix: tier path %q: %w", cfg.Path, err)
	}
	if err := os.MkdirAll(root, 0o750); err != nil {
		return nil, fmt.Errorf("posix: create tier dir: %w", err)
	}
	b := &Backend{root: root, mode: cfg.WriteMode, window: cfg.Window, log: log.With(zap.String("tier_path", root))}
	b.tmpfile = probeTmpfile(root)
	if b.mode == Direct {
		if err := probeDirect(root, b.tmpfile); err != nil {
			b.log.Warn("filesystem refuses O_DIRECT; writing in buffered mode instead", zap.Error(err))
			b.mode = Buffered
		}
	}
	return b, nil
}

// Mode returns the write mode in effect (direct may have fallen back to buffered).
func (b *Backend) Mode() Mode { return b.mode }

// Root returns the tier's root directory.
func (b *Backend) Root() string { return b.root }

// Usage reports the bytes used and the total of the filesystem holding the tier, counted
// as df does (used / total is df's Use%).
func (b *Backend) Usage() (used, total uint64, err error) {
	used, total, err = statfs(b.root)
	if err != nil {
		return 0, 0, fmt.Errorf("statfs %q: %w", b.root, err)
	}
	return used, total, nil
}

// path maps a key to its file, refusing invalid keys and the temp-file prefix.
func (b *Backend) path(key segment.Key) (string, error) {
	if err := key.Valid(); err != nil {
		return "", err
	}
	for c := range strings.SplitSeq(string(key), "/") {
		if strings.HasPrefix(c, tmpPrefix) {
			return "", fmt.Errorf("invalid key %q: component %q uses the reserved prefix %s", key, c, tmpPrefix)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(string(key))), nil
}

// Create implements segment.Backend.
func (b *Backend) Create(ctx context.Context, key segment.Key, size int64) (segment.Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if size < 0 && size != segment.UnknownSize {
		return nil, fmt.Errorf("create %s: negative size %d", key, size)
	}
	if err := mkdirAll(filepath.Dir(path), b.root); err != nil {
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	return b.newWriter(ctx, key, path, size)
}

// Open implements segment.Backend. In mmap mode the reader reads through a mapping.
func (b *Backend) Open(ctx context.Context, key segment.Key) (segment.Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	path, err := b.path(key)
	if err != nil {
		return nil, err
	}
	if b.mode == Mmap {
		r, err := openMapped(ctx, path, b.window)
		return r, mapNotFound(key, err)
	}
	r, err := localfile.Open(ctx, path, localfile.ReadOptions{Window: b.window})
	if err != nil {
		return nil, mapNotFound(key, err)
	}
	return r, nil
}

// Stat implements segment.Backend. An object without a stored CRC (written by something
// else, or on a filesystem without user xattrs) has its CRC computed by reading it.
func (b *Backend) Stat(ctx context.Context, key segment.Key) (segment.Info, error) {
	if err := ctx.Err(); err != nil {
		return segment.Info{}, err
	}
	path, err := b.path(key)
	if err != nil {
		return segment.Info{}, err
	}
	fi, err := os.Lstat(path)
	if err == nil && !fi.Mode().IsRegular() {
		err = fs.ErrNotExist
	}
	if err != nil {
		return segment.Info{}, mapNotFound(key, err)
	}
	info := segment.Info{Entry: segment.Entry{Key: key, Size: fi.Size(), ModTime: fi.ModTime()}}
	var v [16]byte
	n, err := getCRC(path, v[:])
	if err == nil {
		crc, perr := parseCRC(v[:n])
		if perr == nil {
			info.CRC32C = crc
			return info, nil
		}
		err = perr
	}
	if !isNoAttr(err) && !isNoAttrSupport(err) && !errors.Is(err, fs.ErrNotExist) {
		return segment.Info{}, fmt.Errorf("stat %s: read CRC: %w", key, err)
	}
	crc, err := checksumFile(ctx, path, b.window)
	if err != nil {
		return segment.Info{}, mapNotFound(key, err)
	}
	info.CRC32C = crc
	return info, nil
}

// List implements segment.Backend.
func (b *Backend) List(ctx context.Context, prefix segment.Key) ([]segment.Entry, error) {
	start := b.root
	if i := strings.LastIndexByte(string(prefix), '/'); i > 0 {
		dir, err := b.path(prefix[:i])
		if err != nil {
			return nil, fmt.Errorf("list %q: %w", prefix, err)
		}
		start = dir
	}
	var out []segment.Entry
	err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), tmpPrefix) || !d.Type().IsRegular() {
			return nil
		}
		rel, err := filepath.Rel(b.root, p)
		if err != nil {
			return err
		}
		key := segment.Key(filepath.ToSlash(rel))
		if !key.HasPrefix(prefix) {
			return nil
		}
		fi, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // deleted while listing
		}
		if err != nil {
			return err
		}
		out = append(out, segment.Entry{Key: key, Size: fi.Size(), ModTime: fi.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b segment.Entry) int { return strings.Compare(string(a.Key), string(b.Key)) })
	return out, nil
}

// Delete implements segment.Backend. Directories left empty are kept.
func (b *Backend) Delete(ctx context.Context, key segment.Key) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	path, err := b.path(key)
	if err != nil {
		return err
	}
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && !fi.Mode().IsRegular()) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// CleanTemp removes temp files (left by a crash where O_TMPFILE was not available, or
// between link and rename of an overwrite) older than olderThan, and returns how many.
func (b *Backend) CleanTemp(ctx context.Context, olderThan time.Duration) (int, error) {
	n := 0
	cutoff := time.Now().Add(-olderThan)
	err := filepath.WalkDir(b.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() || !strings.HasPrefix(d.Name(), tmpPrefix) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.ModTime().After(cutoff) {
			return nil
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		b.log.Info("removed stale temp file", zap.String("path", p))
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("clean temp files: %w", err)
	}
	return n, nil
}

func mapNotFound(key segment.Key, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, localfile.ErrIsDir) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s: %w", key, segment.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", key, err)
}

// mkdirAll creates dir and its missing parents below root, fsyncing the parent of every
// directory it creates so that the new entries survive a crash.
func mkdirAll(dir, root string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("%s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if dir == root || len(dir) <= len(root) {
		return os.MkdirAll(dir, 0o750)
	}
	parent := filepath.Dir(dir)
	if err := mkdirAll(parent, root); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

func randomSuffix() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func formatCRC(crc uint32) []byte { return fmt.Appendf(nil, "%08x", crc) }

func parseCRC(v []byte) (uint32, error) {
	var crc uint32
	if len(v) != 8 {
		return 0, fmt.Errorf("bad CRC attribute %q", v)
	}
	if _, err := fmt.Sscanf(string(v), "%08x", &crc); err != nil {
		return 0, fmt.Errorf("bad CRC attribute %q", v)
	}
	return crc, nil
}

// probeTmpfile reports whether O_TMPFILE files can be created and linked in dir.
func probeTmpfile(dir string) bool {
	f, err := openTmpfile(dir, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	name := filepath.Join(dir, tmpPrefix+"probe-"+randomSuffix())
	if err := linkTmpfile(f, name); err != nil {
		return false
	}
	_ = os.Remove(name)
	return true
}

// probeDirect checks that an O_DIRECT write of one aligned block succeeds in dir.
var probeDirect = func(dir string, tmpfile bool) error {
	f, name, err := createTemp(dir, oDirect, tmpfile)
	if err != nil {
		return err
	}
	defer func() {
		f.Close()
		if name != "" {
			os.Remove(name)
		}
	}()
	blk := alignedBlock(pageSize)
	if _, err := f.WriteAt(blk, 0); err != nil {
		return err
	}
	return nil
}

// createTemp creates the file a writer fills: an O_TMPFILE inode when possible, else a
// file with a hidden temp name, which it returns ("" for O_TMPFILE).
func createTemp(dir string, flags int, tmpfile bool) (f *os.File, tempName string, err error) {
	if tmpfile {
		if f, err := openTmpfile(dir, flags); err == nil {
			return f, "", nil
		}
	}
	name := filepath.Join(dir, tmpPrefix+randomSuffix())
	f, err = os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|flags, 0o640)
	if err != nil {
		return nil, "", err
	}
	return f, name, nil
}

// checksumFile computes the CRC-32C of a file, reading it without polluting the cache.
func checksumFile(ctx context.Context, path string, window int64) (uint32, error) {
	r, err := localfile.Open(ctx, path, localfile.ReadOptions{Window: window})
	if err != nil {
		return 0, err
	}
	defer r.Close()
	return segment.Checksum(ctx, r, r.Size(), nil)
}
