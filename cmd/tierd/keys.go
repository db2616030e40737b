package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tierd/tierd/codec"
	"github.com/tierd/tierd/segment"
)

func newKeygenCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "keygen ID",
		Short: "Print a new key line for a tier's encryption.key_file",
		Long: `Print "ID BASE64", a new random 256-bit key-encryption key, as one line of a key file
(encryption.key_file). Append it to the file to make it the key that encrypts new objects'
data keys (the last line encrypts; every line decrypts), then run tierd rekey --tier T to
wrap older objects' data keys with it too, after which older keys can be removed. ID is 1 to
32 of A-Z a-z 0-9 . _ -, unique in the file.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			line, err := codec.NewKeyLine(args[0])
			if err != nil {
				return usageError{err}
			}
			fmt.Fprintln(stdout, line)
			return nil
		},
	}
}

// rekeyResult is the --json output of rekey.
type rekeyResult struct {
	Tier   string `json:"tier"`
	KeyID  string `json:"key_id"`
	Prefix string `json:"prefix"`
	codec.RekeyStats
}

func newRekeyCmd(g *globals) *cobra.Command {
	var tier, prefix string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rekey --tier T",
		Short: "Wrap every object's data key on an encrypted tier with the key file's newest key",
		Long: `Wrap the data key of every encrypted object on the tier (under --prefix) with the last
key of its encryption.key_file, in a small key object beside it (KEY.tierd-key), without
rewriting or re-uploading the object itself. Objects already wrapped with that key are left
alone, so rekey can be rerun after an interruption. Once it is done, older keys can be
removed from the key file. The daemon may keep running meanwhile.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := openApp(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			defer a.close()
			t := a.cfg.Tier(tier)
			if t == nil {
				_, err := a.tier(tier)
				return err
			}
			cb := a.codecTiers[tier]
			if cb == nil || t.Encryption.KeyFile == "" {
				return usagef("tier %s has no encryption.key_file: nothing to rekey", tier)
			}
			keys, err := codec.LoadKeyFile(t.Encryption.KeyFile)
			if err != nil {
				return err
			}
			st, err := cb.Rekey(cmd.Context(), segment.Key(prefix), nil)
			res := rekeyResult{Tier: tier, KeyID: keys.Newest(), Prefix: prefix, RekeyStats: st}
			if err != nil {
				return fmt.Errorf("rekey tier %s (%d objects rekeyed before the failure; rerun to go on): %w", tier, st.Rekeyed, err)
			}
			if asJSON {
				return printJSON(res)
			}
			fmt.Fprintf(stdout, "tier %s: %d objects: %d rekeyed with key %s, %d already were, %d not encrypted\n",
				tier, st.Objects, st.Rekeyed, res.KeyID, st.UpToDate, st.Plain)
			return nil
		},
	}
	cmd.Flags().StringVar(&tier, "tier", "", "tier to rekey (required)")
	cmd.Flags().StringVar(&prefix, "prefix", "", "only objects whose key starts with this")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the counts as JSON: tier, key_id, prefix, objects, rekeyed, up_to_date, plain")
	_ = cmd.MarkFlagRequired("tier")
	return cmd
}
