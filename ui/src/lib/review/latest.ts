// One request at a time, for views that ask again faster than the backend answers (a panel
// refreshed at every playback frame): while one request runs, only the newest one asked for
// waits, so replies land in the order asked and requests never pile up. Every reply is handed
// on, also one a newer wish overtook: it is the view of a moment ago, and dropping it starved
// the view during playback (a new wish came with every frame, so every reply was overtaken
// and the panel never changed). An error is handed on only when nothing newer waits (the
// newer request answers instead).

export class LatestRequest<K, T> {
  private busy = false;
  private wanted: { key: K } | null = null;

  constructor(
    private readonly run: (key: K) => Promise<T>,
    private readonly onReply: (key: K, reply: T) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Asks for `key`: now, or when the request running is answered (replacing any older wish). */
  ask(key: K): void {
    this.wanted = { key };
    if (this.busy) return;
    const { key: asked } = this.wanted;
    this.wanted = null;
    this.busy = true;
    const done = (): void => {
      this.busy = false;
      if (this.wanted) this.ask(this.wanted.key);
    };
    this.run(asked).then(
      (reply) => {
        this.onReply(asked, reply);
        done();
      },
      (error) => {
        if (!this.wanted) this.onError(error);
        done();
      },
    );
  }
}
