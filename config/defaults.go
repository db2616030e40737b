package config

import "time"

// S3 limits the config checks part sizes against.
const (
	s3MinPartSize = 5 * MiB // S3's smallest multipart part (except the last)
	s3MaxPartSize = 5 * GiB // and its largest
)

// DefaultSupersededRetainFor is a tier's superseded_retain_for when not set: an old
// version of a rewritten segment stays a week after its newer version is verified there,
// long enough to notice and investigate a rewrite nobody expected.
const DefaultSupersededRetainFor = Duration(7 * 24 * time.Hour)

// defaultConfig is Config with every top-level default and no sources or tiers.
func defaultConfig() *Config {
	return &Config{
		Memory:          Memory{BufferPool: 64 * MiB, BufferSize: 8 * MiB, Codecs: 2},
		Workers:         4,
		ScanInterval:    Duration(30 * time.Second),
		ShutdownTimeout: Duration(30 * time.Second),
		Retry:           Retry{Initial: Duration(time.Second), Max: Duration(5 * time.Minute)},
		Local:           Local{DeleteAfter: Never},
		HTTP:            HTTP{Listen: "127.0.0.1:9464"},
		Log:             Log{Level: "info", Format: "auto"},
		Scrub:           Scrub{Every: Never, Rate: Rate(10 * MiB)},
	}
}

// defaulter is implemented by list elements and per-type settings: the decoder calls
// setDefaults on each one it creates, before decoding into it.
type defaulter interface{ setDefaults() }

func (s *Source) setDefaults() {
	s.SealGrace = Duration(30 * time.Second)
	s.ReadMode = ReadFadvise
}

func (r *RocketMQSource) setDefaults() {
	*r = RocketMQSource{
		CommitLogFileSize:    GiB,
		ConsumeQueueFileSize: 300_000 * 20,
		IndexHashSlots:       5_000_000,
		IndexItems:           20_000_000,
	}
}

func (t *Tier) setDefaults() {
	t.RetainFor = Never
	t.SupersededRetainFor = DefaultSupersededRetainFor
	t.Concurrency = 2
	t.Compression = CompressionNone
}

func (p *PosixTier) setDefaults() {
	p.WriteMode = WriteDirect
	p.MaxUsed = 0.9
}

func (s *S3Tier) setDefaults() {
	s.Driver = DriverAWS
	s.Region = "us-east-1"
	s.SSE = SSENone
	s.PartConcurrency = 4
	s.ReapAfter = Duration(24 * time.Hour)
	s.RequestTimeout = Duration(30 * time.Second)
	s.MinTransferRate = 1 << 20
}

// finish applies the defaults that depend on other fields, after decoding.
func (c *Config) finish() {
	for i := range c.Tiers {
		s := c.Tiers[i].S3
		if s == nil {
			continue
		}
		if s.PartSize == 0 {
			s.PartSize = c.Memory.BufferSize
		}
		if s.PathStyle == nil {
			ps := s.Endpoint != ""
			s.PathStyle = &ps
		}
	}
}
