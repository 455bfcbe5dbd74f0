import { mount } from 'svelte';
import App from './App.svelte';
import { connectBackend } from './lib/backend';
import ReviewApp from './lib/review/ReviewApp.svelte';
import './app.css';

const target = document.getElementById('app');
if (!target) throw new Error('index.html has no #app element');

// One page, two windows: the live console, or the review of a history file
// (`watchfloor review FILE`), which has no pipeline behind it.
async function start(app: HTMLElement): Promise<void> {
  const backend = await connectBackend();
  const mode = await backend.appMode();
  if (mode.mode === 'review') {
    document.title = `Watchfloor review: ${mode.info.path}`;
    mount(ReviewApp, { target: app, props: { backend, info: mode.info } });
  } else {
    mount(App, { target: app });
  }
}

start(target).catch((e: unknown) => {
  target.textContent = `Watchfloor could not start: ${(e as { message?: string }).message ?? String(e)}`;
});
