// Entry point the API imports for GET /v1/videos/{id}/analytics (src/api/routes.ts loads
// `videoAnalytics(cfg, videoId)` from here). Definitions of each figure: clickhouse.ts.
import type { VoraConfig } from '../common/config.ts';
import { videoAnalytics as query, type VideoAnalytics } from './clickhouse.ts';

export type { VideoAnalytics };

export function videoAnalytics(cfg: VoraConfig, videoId: string): Promise<VideoAnalytics> {
  return query(videoId, { cfg });
}
