// Small shared pieces.
const STATE_LABEL: Record<string, string> = {
  CREATED: 'Queued',
  PROCESSING: 'Processing',
  PARTIALLY_READY: 'Partly ready',
  READY: 'Ready',
  FAILED: 'Failed',
  PENDING: 'Pending',
  DONE: 'Done',
  RETRYING: 'Retrying',
};

export function StateBadge({ state, small }: { state: string; small?: boolean }) {
  return (
    <span class={`badge st-${state.toLowerCase()} ${small ? 'small' : ''}`} data-state={state} title={state}>
      {STATE_LABEL[state] ?? state}
    </span>
  );
}

export function Spinner({ label = 'Loading' }: { label?: string }) {
  return (
    <div class="loading" role="status">
      <span class="spinner" aria-hidden="true" /> {label}…
    </div>
  );
}

export function ErrorBox({ message, retry }: { message: string; retry?: () => void }) {
  return (
    <div class="banner error" role="alert">
      <span>{message}</span>
      {retry && (
        <button type="button" class="btn small" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}
