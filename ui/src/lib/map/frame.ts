// Coalesces any number of update requests into at most one callback per animation frame, so a
// burst of batches costs the map one setData, not one per batch.
export class FrameScheduler {
  private pending = false;

  constructor(
    private readonly run: () => void,
    private readonly requestFrame: (cb: () => void) => unknown = (cb) => requestAnimationFrame(cb),
  ) {}

  request(): void {
    if (this.pending) return;
    this.pending = true;
    this.requestFrame(() => {
      this.pending = false;
      this.run();
    });
  }
}
