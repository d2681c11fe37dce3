"""The station driver's Python side for widowx_envs' robot server (activities/robot/station/widowx-envs.ts)."""
