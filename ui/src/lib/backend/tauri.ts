// The one module that talks to Tauri. Everything else uses the Backend interface.
import { Channel, invoke } from '@tauri-apps/api/core';
import type { Backend, ConsoleInfo, LiveBatch, MetricsView, QuarantineView } from './types';

export const tauriBackend: Backend = {
  kind: 'tauri',
  consoleInfo: () => invoke<ConsoleInfo>('console_info'),
  metrics: () => invoke<MetricsView>('metrics'),
  retryNow: () => invoke<void>('retry_now'),
  recentQuarantine: (limit) => invoke<QuarantineView[]>('recent_quarantine', { limit }),
  async subscribeLive(onBatch) {
    const channel = new Channel<LiveBatch>();
    channel.onmessage = onBatch;
    await invoke('subscribe_live', { onBatch: channel });
  },
};
