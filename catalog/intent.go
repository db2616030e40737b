package catalog

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/tierd/tierd/segment"
)

// Intent operations the daemon journals.
const (
	OpOffload = "offload" // copy a segment to a tier
	OpDelete  = "delete"  // remove an object (and its marker) from a tier
)

// Intent is a journal entry: a job that is about to change a tier. It is written (Begin)
// before the job touches the tier and removed when the job is recorded (Commit) or undone
// (Finish). Intents present at start were interrupted by a crash; the daemon finishes or
// rolls each back (docs/DESIGN.md invariant 4).
type Intent struct {
	ID      uint64      `json:"id"`             // assigned by Begin, increasing, never reused
	Tier    string      `json:"tier"`           // tier being changed
	Key     segment.Key `json:"key"`            // object key on that tier
	Source  string      `json:"src,omitempty"`  // source of the local segment, if any
	Rel     string      `json:"rel,omitempty"`  // its path relative to the source dir
	Kind    string      `json:"kind,omitempty"` // the segment's kind (segment.Kind)
	Op      string      `json:"op"`             // OpOffload, OpDelete, ...
	Started time.Time   `json:"started"`        // when the job began (UTC)
	// UploadID is the S3 multipart upload ID, set by SetUploadID once known, so that the
	// upload of a crashed job can be aborted.
	UploadID string `json:"upload,omitempty"`
}

func (in Intent) validate() error {
	if err := checkName("tier", in.Tier); err != nil {
		return err
	}
	if err := in.Key.Valid(); err != nil {
		return fmt.Errorf("object key: %w", err)
	}
	if in.Source != "" || in.Rel != "" {
		if err := checkSource(in.Source); err != nil {
			return err
		}
		if err := checkRel(in.Rel); err != nil {
			return err
		}
	}
	if in.Op == "" || len(in.Op) > 64 {
		return fmt.Errorf("operation %q: want 1 to 64 bytes", in.Op)
	}
	return nil
}

func intentKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// Begin journals in and returns it with its new ID (in.ID is ignored) and, if in.Started
// is zero, the current time. It is durable when it returns.
func (c *Catalog) Begin(in Intent) (Intent, error) {
	if err := in.validate(); err != nil {
		return Intent{}, fmt.Errorf("begin intent: %w", err)
	}
	if in.Started.IsZero() {
		in.Started = time.Now()
	}
	in.Started = in.Started.UTC()
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIntents)
		id, err := b.NextSequence()
		if err != nil {
			return err
		}
		in.ID = id
		return putIntent(b, in)
	})
	if err != nil {
		return Intent{}, fmt.Errorf("begin intent %s %s on tier %s: %w", in.Op, in.Key, in.Tier, err)
	}
	return in, nil
}

func putIntent(b *bolt.Bucket, in Intent) error {
	v, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return b.Put(intentKey(in.ID), v)
}

func getIntent(b *bolt.Bucket, id uint64) (Intent, error) {
	v := b.Get(intentKey(id))
	if v == nil {
		return Intent{}, fmt.Errorf("intent %d: %w", id, segment.ErrNotFound)
	}
	var in Intent
	if err := json.Unmarshal(v, &in); err != nil {
		return Intent{}, fmt.Errorf("intent %d is corrupt: %w", id, err)
	}
	return in, nil
}

// SetUploadID records the multipart upload ID of intent id. If there is no such intent the
// error wraps segment.ErrNotFound.
func (c *Catalog) SetUploadID(id uint64, uploadID string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIntents)
		in, err := getIntent(b, id)
		if err != nil {
			return err
		}
		in.UploadID = uploadID
		return putIntent(b, in)
	})
	if err != nil {
		return fmt.Errorf("set upload ID: %w", err)
	}
	return nil
}

// Finish removes intent id from the journal: the job is over with nothing to record (it
// was rolled back, or it was a delete whose record is already gone). Finishing a missing
// intent is not an error.
func (c *Catalog) Finish(id uint64) error {
	err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bIntents).Delete(intentKey(id)) })
	if err != nil {
		return fmt.Errorf("finish intent %d: %w", id, err)
	}
	return nil
}

// Intents returns every journaled intent, oldest (lowest ID) first.
func (c *Catalog) Intents() ([]Intent, error) {
	var ins []Intent
	err := c.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bIntents).ForEach(func(k, v []byte) error {
			var in Intent
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("intent %x is corrupt: %w", k, err)
			}
			ins = append(ins, in)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list intents: %w", err)
	}
	return ins, nil
}

// Commit records rec and removes intent intentID in one transaction: after a crash either
// both happened or neither did. It fails, changing nothing, if the intent is missing (the
// error then wraps segment.ErrNotFound) or is for another tier or key.
func (c *Catalog) Commit(rec Record, intentID uint64) error {
	if rec.Tier == "" {
		return fmt.Errorf("commit record %s: no tier", rec.Key)
	}
	val, err := encodeValue(rec)
	if err != nil {
		return fmt.Errorf("commit record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	err = c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIntents)
		in, err := getIntent(b, intentID)
		if err != nil {
			return err
		}
		if in.Tier != rec.Tier || in.Key != rec.Key {
			return fmt.Errorf("intent %d is for %s on tier %s", intentID, in.Key, in.Tier)
		}
		if err := putTx(tx, rec, val); err != nil {
			return err
		}
		return b.Delete(intentKey(intentID))
	})
	if err != nil {
		return fmt.Errorf("commit record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	return nil
}

// BeginAll journals every intent of ins in one transaction (one fsync for a batch of
// jobs) and returns them with their IDs, as Begin does for one.
func (c *Catalog) BeginAll(ins []Intent) ([]Intent, error) {
	out := make([]Intent, len(ins))
	now := time.Now().UTC()
	for i, in := range ins {
		if err := in.validate(); err != nil {
			return nil, fmt.Errorf("begin intent: %w", err)
		}
		if in.Started.IsZero() {
			in.Started = now
		}
		in.Started = in.Started.UTC()
		out[i] = in
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIntents)
		for i := range out {
			id, err := b.NextSequence()
			if err != nil {
				return err
			}
			out[i].ID = id
			if err := putIntent(b, out[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("begin %d intents: %w", len(ins), err)
	}
	return out, nil
}

// CommitAll records recs, removing intent intentIDs[i] with recs[i], and removes the
// intents of finish (jobs of the batch that failed), all in one transaction: the group
// commit of a batch of jobs. It fails, changing nothing, if any intent of intentIDs is
// missing or for another tier or key.
func (c *Catalog) CommitAll(recs []Record, intentIDs []uint64, finish []uint64) error {
	if len(recs) != len(intentIDs) {
		return fmt.Errorf("BUG: commit %d records with %d intents", len(recs), len(intentIDs))
	}
	vals := make([][]byte, len(recs))
	for i, rec := range recs {
		if rec.Tier == "" {
			return fmt.Errorf("commit record %s: no tier", rec.Key)
		}
		v, err := encodeValue(rec)
		if err != nil {
			return fmt.Errorf("commit record %s on tier %s: %w", rec.Key, rec.Tier, err)
		}
		vals[i] = v
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bIntents)
		for i, rec := range recs {
			in, err := getIntent(b, intentIDs[i])
			if err != nil {
				return err
			}
			if in.Tier != rec.Tier || in.Key != rec.Key {
				return fmt.Errorf("intent %d is for %s on tier %s, not %s on %s", intentIDs[i], in.Key, in.Tier, rec.Key, rec.Tier)
			}
			if err := putTx(tx, rec, vals[i]); err != nil {
				return err
			}
			if err := b.Delete(intentKey(intentIDs[i])); err != nil {
				return err
			}
		}
		for _, id := range finish {
			if err := b.Delete(intentKey(id)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commit %d records: %w", len(recs), err)
	}
	return nil
}
