package catalog

import (
	"bytes"
	"fmt"
	"io"

	bolt "go.etcd.io/bbolt"

	"github.com/tierd/tierd/segment"
)

// Put records rec (replacing any record of the same tier and key) and updates the Holders
// index in the same transaction. It fails if rec is not valid or names no tier.
func (c *Catalog) Put(rec Record) error {
	return c.putAll([]Record{rec}, false)
}

// putAll records every rec in one transaction. rebuilt says the records come from outside
// the offload pipeline (markers): other tiers may want those segments, so the due index
// is rebuilt at the next IndexTiers.
func (c *Catalog) putAll(recs []Record, rebuilt bool) error {
	vals := make([][]byte, len(recs))
	for i, rec := range recs {
		if rec.Tier == "" {
			return fmt.Errorf("put record %s: no tier", rec.Key)
		}
		v, err := encodeValue(rec)
		if err != nil {
			return fmt.Errorf("put record %s on tier %s: %w", rec.Key, rec.Tier, err)
		}
		vals[i] = v
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		for i, rec := range recs {
			if err := putTx(tx, rec, vals[i]); err != nil {
				return err
			}
		}
		if rebuilt {
			return forgetDueTiersTx(tx)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put %d record(s): %w", len(recs), err)
	}
	return nil
}

// putTx writes the encoded record val of rec and its Holders entry, first removing the
// Holders entry of a record it replaces.
func putTx(tx *bolt.Tx, rec Record, val []byte) error {
	if err := deleteTx(tx, rec.Tier, rec.Key); err != nil {
		return err
	}
	if err := tx.Bucket(bRecords).Put(recordKey(rec.Tier, rec.Key), val); err != nil {
		return fmt.Errorf("put record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	if err := tx.Bucket(bHolders).Put(holderKey(rec), nil); err != nil {
		return fmt.Errorf("index record %s on tier %s: %w", rec.Key, rec.Tier, err)
	}
	if err := indexSupersededTx(tx, rec.normalize()); err != nil {
		return err
	}
	return indexRecordTx(tx, rec.normalize(), 1)
}

// deleteTx removes the record of (tier, key) and its Holders entry, if there is one.
func deleteTx(tx *bolt.Tx, tier string, key segment.Key) error {
	rk := recordKey(tier, key)
	val := tx.Bucket(bRecords).Get(rk)
	if val == nil {
		return nil
	}
	old, err := decodeValue(rk, val)
	if err != nil {
		return fmt.Errorf("catalog value of %s on tier %s is corrupt: %w", key, tier, err)
	}
	if err := tx.Bucket(bHolders).Delete(holderKey(old)); err != nil {
		return fmt.Errorf("unindex record %s on tier %s: %w", key, tier, err)
	}
	if err := tx.Bucket(bRecords).Delete(rk); err != nil {
		return fmt.Errorf("delete record %s on tier %s: %w", key, tier, err)
	}
	return indexRecordTx(tx, old, -1)
}

// Get returns the record of key on tier. If there is none the error wraps
// segment.ErrNotFound.
func (c *Catalog) Get(tier string, key segment.Key) (Record, error) {
	if err := checkTierKey(tier, key); err != nil {
		return Record{}, fmt.Errorf("get record: %w", err)
	}
	var rec Record
	err := c.db.View(func(tx *bolt.Tx) error {
		var err error
		rec, err = getTx(tx, tier, key)
		return err
	})
	return rec, err
}

func getTx(tx *bolt.Tx, tier string, key segment.Key) (Record, error) {
	rk := recordKey(tier, key)
	val := tx.Bucket(bRecords).Get(rk)
	if val == nil {
		return Record{}, fmt.Errorf("catalog record of %s on tier %s: %w", key, tier, segment.ErrNotFound)
	}
	rec, err := decodeValue(rk, val)
	if err != nil {
		return Record{}, fmt.Errorf("catalog value of %s on tier %s is corrupt: %w", key, tier, err)
	}
	return rec, nil
}

// Delete removes the record of key on tier and its Holders entry. Deleting a missing
// record is not an error.
func (c *Catalog) Delete(tier string, key segment.Key) error {
	if err := checkTierKey(tier, key); err != nil {
		return fmt.Errorf("delete record: %w", err)
	}
	if err := c.db.Update(func(tx *bolt.Tx) error { return deleteTx(tx, tier, key) }); err != nil {
		return fmt.Errorf("delete record: %w", err)
	}
	return nil
}

// List returns the records of tier ("" for every tier), sorted by tier, then key. It
// holds them all: for tools and tests on small catalogs; anything that may see a large
// catalog uses WalkRecords.
func (c *Catalog) List(tier string) ([]Record, error) {
	var recs []Record
	err := c.WalkRecords(tier, func(r Record) error {
		recs = append(recs, r)
		return nil
	})
	return recs, err
}

// WalkRecords calls fn for every record of tier ("" for every tier), sorted by tier, then
// key, reading them a page at a time: memory stays bounded whatever the number of
// records, and no transaction is open while fn runs (fn may write to the catalog). Records
// put or deleted during the walk may or may not be seen. An error from fn stops the walk
// and is returned as is.
func (c *Catalog) WalkRecords(tier string, fn func(Record) error) error {
	var prefix []byte
	if tier != "" {
		if err := checkName("tier", tier); err != nil {
			return fmt.Errorf("list records: %w", err)
		}
		prefix = []byte(tier + "\x00")
	}
	after := prefix
	first := true
	for {
		var page []Record
		err := c.db.View(func(tx *bolt.Tx) error {
			cur := tx.Bucket(bRecords).Cursor()
			k, v := cur.Seek(after)
			if !first && k != nil && bytes.Equal(k, after) {
				k, v = cur.Next()
			}
			for ; k != nil && bytes.HasPrefix(k, prefix) && len(page) < pageSize; k, v = cur.Next() {
				rec, err := decodeValue(k, v)
				if err != nil {
					return fmt.Errorf("catalog value %q is corrupt: %w", k, err)
				}
				page = append(page, rec)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("list records: %w", err)
		}
		for _, r := range page {
			if err := fn(r); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last := page[len(page)-1]
		after, first = recordKey(last.Tier, last.Key), false
	}
}

// Holders returns the record of every tier holding a copy of the local file rel of
// source, sorted by tier, then key (one tier may hold several objects made from the same
// file, e.g. a raw copy and a compacted index).
func (c *Catalog) Holders(source, rel string) ([]Record, error) {
	if err := checkSource(source); err != nil {
		return nil, fmt.Errorf("holders: %w", err)
	}
	if err := checkRel(rel); err != nil {
		return nil, fmt.Errorf("holders: %w", err)
	}
	prefix := holderPrefix(source, rel)
	var recs []Record
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bHolders).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			rk := k[len(prefix):]
			tier, key, ok := bytes.Cut(rk, []byte{0})
			if !ok {
				return fmt.Errorf("holders entry %q is corrupt: no record key", k)
			}
			rec, err := getTx(tx, string(tier), segment.Key(key))
			if err != nil {
				return fmt.Errorf("holders index of %s/%s: %w", source, rel, err)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("holders of %s/%s: %w", source, rel, err)
	}
	return recs, nil
}

// Dump writes every record as one JSON line (the marker encoding plus "tier"), sorted by
// tier, then key, streaming: it holds one page of records at a time. Two catalogs with the
// same records dump the same bytes.
func (c *Catalog) Dump(w io.Writer) error {
	err := c.WalkRecords("", func(rec Record) error {
		b, err := encodeRecord(rec)
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	})
	if err != nil {
		return fmt.Errorf("dump catalog: %w", err)
	}
	return nil
}

func checkTierKey(tier string, key segment.Key) error {
	if err := checkName("tier", tier); err != nil {
		return err
	}
	return key.Valid()
}

// HoldersUnder returns the record of every tier holding a copy of a local file of source
// whose path starts with relPrefix (e.g. one Kafka partition directory, "topic-0/"),
// sorted by file, then tier, then key. It reads the Holders index: its cost is the
// number of records under the prefix, not in the catalog.
func (c *Catalog) HoldersUnder(source, relPrefix string) ([]Record, error) {
	if err := checkSource(source); err != nil {
		return nil, fmt.Errorf("holders: %w", err)
	}
	prefix := []byte(source + "\x00" + relPrefix)
	var recs []Record
	err := c.db.View(func(tx *bolt.Tx) error {
		cur := tx.Bucket(bHolders).Cursor()
		for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
			parts := bytes.SplitN(k, []byte{0}, 4)
			if len(parts) != 4 {
				return fmt.Errorf("holders entry %q is corrupt", k)
			}
			rec, err := getTx(tx, string(parts[2]), segment.Key(parts[3]))
			if err != nil {
				return fmt.Errorf("holders index of %s/%s: %w", source, parts[1], err)
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("holders of %s/%s*: %w", source, relPrefix, err)
	}
	return recs, nil
}
