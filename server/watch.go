package server

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
)

// reloadOnSignal reloads on every SIGHUP until ctx ends. The signal is
// caught from the moment it returns: SIGHUP's default is to end the
// process.
func (l *Live) reloadOnSignal(ctx context.Context) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				l.log.Info("SIGHUP: reloading the configuration")
				_ = l.Reload(ctx, false) // Reload logs what went wrong
			}
		}
	}()
}

// settle is how long the file must be quiet before a change is loaded:
// an editor's save or a ConfigMap update is several events, and a file
// read half-way through a write would be refused (and logged) for
// nothing.
const settle = 250 * time.Millisecond

// watchFile reloads when the configuration file changes (server.
// watch_config), until ctx ends. It watches the file's directory, not the
// file: editors save by writing a new file and renaming it over the old
// one, and Kubernetes updates a mounted ConfigMap by swapping a symlink
// (..data) in the directory, and neither is an event on the old file.
// Any event in the directory schedules a look; Reload loads the file only
// when its content differs from what was last loaded.
func (l *Live) watchFile(ctx context.Context, file string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	if err := w.Add(filepath.Dir(file)); err != nil {
		w.Close()
		return err
	}
	go func() {
		defer w.Close()
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		for {
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case _, ok := <-w.Events:
				if !ok {
					return
				}
				timer.Reset(settle)
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				l.log.Warn("watching the configuration file", "file", file, "err", err)
			case <-timer.C:
				if err := l.Reload(ctx, true); err == nil {
					l.log.Info("configuration file changed: reloaded", "file", file)
				} else if !errors.Is(err, ErrUnchanged) {
					l.log.Warn("configuration file changed: not reloaded", "file", file)
				}
			}
		}
	}()
	return nil
}
