package brokersim

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
)

// checkpointSize is the broker's checkpoint file size (one OS page).
const checkpointSize = 4096

// writeCheckpoint writes <store>/checkpoint as StoreCheckpoint does: physicMsgTimestamp,
// logicsMsgTimestamp, indexMsgTimestamp, masterFlushedOffset, confirmPhyOffset (int64 each)
// in a 4 KiB file.
func writeCheckpoint(storeDir string, lastStoreTimestamp, phyEnd int64) error {
	b := make([]byte, checkpointSize)
	be := binary.BigEndian
	be.PutUint64(b[0:], uint64(lastStoreTimestamp))
	be.PutUint64(b[8:], uint64(lastStoreTimestamp))
	be.PutUint64(b[16:], uint64(lastStoreTimestamp))
	be.PutUint64(b[24:], uint64(phyEnd))
	be.PutUint64(b[32:], uint64(phyEnd))
	return writeFileAtomic(filepath.Join(storeDir, "checkpoint"), b)
}

// rocketMQMetaFiles are the store's non-segment files, relative to the store.
var rocketMQMetaFiles = []string{
	"abort", "lock", "checkpoint",
	"config/topics.json", "config/topics.json.bak",
	"config/consumerOffset.json", "config/consumerOffset.json.bak",
	"config/subscriptionGroup.json", "config/subscriptionGroup.json.bak",
	"config/delayOffset.json", "config/delayOffset.json.bak",
}

// writeRocketMQMeta writes what a running broker keeps next to its segments: the abort
// marker (present while the broker runs), the lock file and config/*.json (with .bak
// copies), in the broker's JSON shapes.
func writeRocketMQMeta(storeDir string, topics []string, queues int, now int64) error {
	for _, name := range []string{"abort", "lock"} {
		if err := writeFileAtomic(filepath.Join(storeDir, name), nil); err != nil {
			return err
		}
	}
	type topicConfig struct {
		Attributes      map[string]string `json:"attributes"`
		Order           bool              `json:"order"`
		Perm            int               `json:"perm"`
		ReadQueueNums   int               `json:"readQueueNums"`
		TopicFilterType string            `json:"topicFilterType"`
		TopicName       string            `json:"topicName"`
		TopicSysFlag    int               `json:"topicSysFlag"`
		WriteQueueNums  int               `json:"writeQueueNums"`
	}
	dataVersion := map[string]int64{"counter": 1, "stateVersion": 0, "timestamp": now}
	table := map[string]topicConfig{}
	for _, t := range topics {
		table[t] = topicConfig{Attributes: map[string]string{}, Perm: 6, ReadQueueNums: queues,
			TopicFilterType: "SINGLE_TAG", TopicName: t, WriteQueueNums: queues}
	}
	docs := map[string]any{
		"topics.json":            map[string]any{"dataVersion": dataVersion, "topicConfigTable": table},
		"consumerOffset.json":    map[string]any{"offsetTable": map[string]any{}},
		"subscriptionGroup.json": map[string]any{"dataVersion": dataVersion, "subscriptionGroupTable": map[string]any{}},
		"delayOffset.json":       map[string]any{"offsetTable": map[string]any{}},
	}
	for name, doc := range docs {
		b, err := json.MarshalIndent(doc, "", "\t")
		if err != nil {
			return fmt.Errorf("encode config/%s: %w", name, err)
		}
		for _, n := range []string{name, name + ".bak"} {
			if err := writeFileAtomic(filepath.Join(storeDir, "config", n), b); err != nil {
				return err
			}
		}
	}
	return nil
}
