package catalog

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
	"go.uber.org/zap"
)

// SchemaVersion is the version of the database layout this package reads and writes.
const SchemaVersion = 2

// DBFile is the name of the catalog database inside state_dir.
const DBFile = "catalog.db"

// lockTimeout bounds how long Open waits for bbolt's file lock: another tierd process on
// the same state_dir holds it for its whole life, so waiting longer would only hide that.
const lockTimeout = 250 * time.Millisecond

// Buckets. Keys of bRecords are tier+"\x00"+key; keys of bHolders are
// source+"\x00"+rel+"\x00"+tier+"\x00"+key with empty values (the Holders index, written in
// the same transaction as the record); keys of bIntents are 8-byte big-endian intent IDs.
// The indexes that keep planning and scanning off the record count are in index.go, the
// local state the scans keep in local.go.
var (
	bMeta    = []byte("meta")
	bRecords = []byte("records")
	bHolders = []byte("holders")
	bIntents = []byte("intents")

	metaSchema   = []byte("schema")
	metaNode     = []byte("node")
	metaInstance = []byte("instance")
)

// Catalog is the durable record of one node's tiered segments, stored in state_dir.
//
// Concurrency: every method may be called concurrently; writes are serialised by bbolt.
// Only one process can have a state_dir's catalog open (Open fails fast otherwise).
//
// Durability: every method that changes the catalog (Put, Delete, Begin, SetUploadID,
// Finish, Commit, Rebuild) has fsynced its change when it returns nil; bbolt's default
// fsync-per-commit is kept on purpose. A crash never leaves half a transaction.
type Catalog struct {
	db   *bolt.DB
	dir  string
	node string
	log  *zap.Logger
}

// ErrLocked is returned by Open when another process has the catalog open.
var ErrLocked = errors.New("catalog locked")

// Open opens (creating if needed) the catalog in stateDir for node. It creates stateDir
// (0o750) if it is missing. It fails if another process has stateDir open, or if stateDir
// was created for a different node: a state_dir belongs to exactly one node. log may be
// nil.
func Open(stateDir, node string, log *zap.Logger) (*Catalog, error) {
	if err := checkNodeOrSource("node", node); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("create state_dir %s: %w", stateDir, err)
	}
	path := filepath.Join(stateDir, DBFile)
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("state_dir %s is in use by another tierd process (lock on %s not acquired within %s): %w", stateDir, path, lockTimeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return initMeta(tx, stateDir, node) }); err != nil {
		db.Close()
		return nil, err
	}
	c := &Catalog{db: db, dir: stateDir, node: node, log: log.Named("catalog")}
	c.log.Debug("catalog open", zap.String("path", path), zap.String("node", node))
	return c, nil
}

// initMeta creates the buckets and checks (or, on a new database, records) the schema
// version and the node.
func initMeta(tx *bolt.Tx, stateDir, node string) error {
	meta, err := tx.CreateBucketIfNotExists(bMeta)
	if err != nil {
		return fmt.Errorf("create catalog meta: %w", err)
	}
	migrate := false
	if v := meta.Get(metaSchema); v != nil {
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("catalog in %s: bad schema version %q", stateDir, v)
		}
		if n != SchemaVersion && n != 1 {
			return fmt.Errorf("catalog in %s has schema version %d; this tierd reads version %d", stateDir, n, SchemaVersion)
		}
		migrate = n == 1
	} else if err := meta.Put(metaSchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
		return fmt.Errorf("record catalog schema: %w", err)
	}
	if v := meta.Get(metaNode); v != nil {
		if string(v) != node {
			return fmt.Errorf("state_dir %s belongs to node %q, not %q", stateDir, v, node)
		}
	} else if err := meta.Put(metaNode, []byte(node)); err != nil {
		return fmt.Errorf("record catalog node: %w", err)
	}
	if migrate {
		if err := meta.Put(metaSchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("record catalog schema: %w", err)
		}
	}
	if meta.Get(metaInstance) == nil {
		var id [8]byte
		if _, err := rand.Read(id[:]); err != nil {
			return fmt.Errorf("make instance id: %w", err)
		}
		if err := meta.Put(metaInstance, []byte(hex.EncodeToString(id[:]))); err != nil {
			return fmt.Errorf("record instance id: %w", err)
		}
	}
	for _, name := range [][]byte{bRecords, bHolders, bIntents, bAge, bStats, bDue, bLAge, bLocal, bSeqs, bSuper} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create catalog bucket %s: %w", name, err)
		}
	}
	if migrate {
		// Schema 1 had records, holders and intents only: build the indexes.
		return migrateV1(tx)
	}
	return nil
}

// InstanceID is a random id made when the catalog was created: it names this tierd
// installation (its state_dir) for as long as the state_dir lives, e.g. as the holder of
// the node's fencing lease.
func (c *Catalog) InstanceID() (string, error) {
	var id string
	err := c.db.View(func(tx *bolt.Tx) error {
		id = string(tx.Bucket(bMeta).Get(metaInstance))
		return nil
	})
	return id, err
}

// Node is the node the catalog belongs to.
func (c *Catalog) Node() string { return c.node }

// Dir is the catalog's state_dir.
func (c *Catalog) Dir() string { return c.dir }

// Close closes the database and releases the state_dir lock. It does not remove the abort
// marker: call CleanExit for that.
func (c *Catalog) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("close catalog in %s: %w", c.dir, err)
	}
	return nil
}
