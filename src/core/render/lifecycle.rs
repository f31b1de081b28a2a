//! The words of joiners, movers and leavers: plans, the HR feed and the reports.
